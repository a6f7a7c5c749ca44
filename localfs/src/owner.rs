//! Who owns an entry, for listings: the numeric ids with the names the system's user database
//! gives them (NSS, so `/etc/passwd`, LDAP and the rest alike). Names are remembered, since a
//! listing of 100,000 files of one owner must not ask the database 100,000 times, and a slow
//! directory service would stall every listing.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use ferry_protocol::Owner;
use nix::unistd::{Gid, Group, Uid, User};

/// How many ids each table remembers. A tree of files owned by more ids than this only costs
/// lookups again: the table starts over rather than grow without bound.
const REMEMBERED: usize = 1024;
/// Names longer than this are left out (the ids still say who it is): a hostile user database
/// must not make every entry of a listing large.
const MAX_NAME: usize = 64;

type Names = Mutex<HashMap<u32, Option<String>>>;

static USERS: LazyLock<Names> = LazyLock::new(Names::default);
static GROUPS: LazyLock<Names> = LazyLock::new(Names::default);

/// The owner of a file with these ids, names looked up (or remembered).
pub fn owner(uid: u32, gid: u32) -> Owner {
    Owner {
        uid,
        gid,
        user: remembered(&USERS, uid, |id| {
            User::from_uid(Uid::from_raw(id))
                .ok()
                .flatten()
                .map(|u| u.name)
        }),
        group: remembered(&GROUPS, gid, |id| {
            Group::from_gid(Gid::from_raw(id))
                .ok()
                .flatten()
                .map(|g| g.name)
        }),
    }
}

/// The name for `id` in `table`, asking `look_up` the first time. The lock is not held
/// during the lookup: two threads may both ask once, which is cheaper than making every
/// listing wait behind one slow lookup.
fn remembered(
    table: &Names,
    id: u32,
    look_up: impl FnOnce(u32) -> Option<String>,
) -> Option<String> {
    if let Ok(names) = table.lock()
        && let Some(name) = names.get(&id)
    {
        return name.clone();
    }
    let name = look_up(id)
        .filter(|name| !name.is_empty() && name.len() <= MAX_NAME)
        .map(|name| ferry_protocol::path::encode(name.as_bytes()).into_owned());
    if let Ok(mut names) = table.lock() {
        if names.len() >= REMEMBERED {
            names.clear();
        }
        names.insert(id, name.clone());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named_and_unknown_ids_are_numbers_only() {
        let root = owner(0, 0);
        assert_eq!(
            (root.user.as_deref(), root.group.as_deref()),
            (Some("root"), Some("root"))
        );
        // Twice: the second answer comes from the table and says the same.
        assert_eq!(owner(0, 0), root);
        let nobody_knows = owner(3_999_999_999, 3_999_999_999);
        assert_eq!((nobody_knows.user, nobody_knows.group), (None, None));
        assert_eq!(nobody_knows.uid, 3_999_999_999);
    }
}
