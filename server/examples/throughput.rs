//! Measures upload and download speed through a real server on loopback against a raw socket
//! copy of the same size, the ceiling the protocol is compared to.
//!
//! `cargo run --release -p ferry-server --example throughput -- [MiB]` (default 1024). The
//! served root is a temporary directory on /dev/shm so the disk is not what is measured.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 1024 * 1024;

#[tokio::main]
async fn main() -> Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1024);
    let size = mib * 1024 * 1024;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 + i / 4096) as u8).collect();

    let raw = raw_copy(size, &chunk).await?;
    let dir = tempfile::tempdir_in("/dev/shm").context("tmpfs")?;
    let disk = disk_write(&dir.path().join("baseline"), size, &chunk)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ferry_server::run(
        listener,
        ferry_server::Config::new(dir.path()),
        async {
            let _ = stop_rx.await;
        },
    ));

    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(CHUNK, read);
    let mut line = Vec::new();
    write
        .write_all(b"{\"op\":\"hello\",\"version\":1}\n")
        .await?;
    read_line(&mut read, &mut line).await?;

    let started = Instant::now();
    write
        .write_all(format!("{{\"op\":\"put\",\"path\":\"big\",\"size\":{size}}}\n").as_bytes())
        .await?;
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        write.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    read_line(&mut read, &mut line).await?;
    let put = started.elapsed();

    let started = Instant::now();
    write
        .write_all(b"{\"op\":\"get\",\"path\":\"big\"}\n")
        .await?;
    read_line(&mut read, &mut line).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = read
            .read(&mut buf[..left.min(CHUNK as u64) as usize])
            .await?;
        if n == 0 {
            bail!("server closed mid-payload");
        }
        left -= n as u64;
    }
    read_line(&mut read, &mut line).await?;
    let get = started.elapsed();

    // Many small files, pipelined: what per-request overhead costs.
    const SMALL: usize = 4096;
    const FILES: usize = 5000;
    let writer = tokio::spawn(async move {
        let body = vec![b's'; SMALL];
        let mut burst = Vec::new();
        for i in 0..FILES {
            burst.extend_from_slice(
                format!("{{\"op\":\"put\",\"path\":\"s{i}\",\"size\":{SMALL}}}\n").as_bytes(),
            );
            burst.extend_from_slice(&body);
        }
        for i in 0..FILES {
            burst.extend_from_slice(format!("{{\"op\":\"stat\",\"path\":\"s{i}\"}}\n").as_bytes());
        }
        write.write_all(&burst).await?;
        anyhow::Ok(write)
    });
    let started = Instant::now();
    for _ in 0..2 * FILES {
        read_line(&mut read, &mut line).await?;
    }
    let small = started.elapsed();
    let mut write = writer.await??;

    let writer = tokio::spawn(async move {
        let mut burst = Vec::new();
        for i in 0..FILES {
            burst.extend_from_slice(format!("{{\"op\":\"get\",\"path\":\"s{i}\"}}\n").as_bytes());
        }
        write.write_all(&burst).await?;
        anyhow::Ok(write)
    });
    let started = Instant::now();
    let mut body = vec![0u8; SMALL];
    for _ in 0..FILES {
        read_line(&mut read, &mut line).await?;
        read.read_exact(&mut body).await?;
        read_line(&mut read, &mut line).await?;
    }
    let small_gets = started.elapsed();
    drop(writer.await??);

    let _ = stop_tx.send(());
    server.await??;
    let rate = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    println!("{mib} MiB over loopback, root on /dev/shm");
    println!("raw socket  {:8.0} MB/s", rate(raw));
    println!("file write  {:8.0} MB/s", rate(disk));
    // An upload can go no faster than the slower of the socket and the filesystem.
    let ceiling = raw.max(disk);
    println!(
        "put         {:8.0} MB/s  ({:.2}x that ceiling)",
        rate(put),
        ceiling.as_secs_f64() / put.as_secs_f64()
    );
    println!(
        "get         {:8.0} MB/s  ({:.2}x raw)",
        rate(get),
        raw.as_secs_f64() / get.as_secs_f64()
    );
    println!(
        "small files {:8.0} puts+stats/s  ({FILES} x {SMALL} B, pipelined on one connection)",
        (2 * FILES) as f64 / small.as_secs_f64()
    );
    println!(
        "small files {:8.0} gets/s",
        FILES as f64 / small_gets.as_secs_f64()
    );
    Ok(())
}

/// Writes `size` bytes to a fresh file, the ceiling for an upload to that filesystem.
fn disk_write(path: &std::path::Path, size: u64, chunk: &[u8]) -> Result<Duration> {
    use std::io::Write;
    let started = Instant::now();
    let mut file = std::fs::File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    drop(file);
    let took = started.elapsed();
    std::fs::remove_file(path)?;
    Ok(took)
}

/// Sends `size` bytes through a plain loopback socket into a reader that drops them.
async fn raw_copy(size: u64, chunk: &[u8]) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sink = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(total);
            }
            total += n as u64;
        }
    });
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    stream.shutdown().await?;
    let total = sink.await??;
    if total != size {
        bail!("raw copy lost bytes");
    }
    Ok(started.elapsed())
}

async fn read_line(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> Result<()> {
    line.clear();
    read.read_until(b'\n', line).await?;
    if !line.starts_with(b"{\"ok\":true") {
        bail!("server said {}", String::from_utf8_lossy(line));
    }
    Ok(())
}
