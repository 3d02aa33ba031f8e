//! Raw bcrypt rate of this machine: what the login endpoint is measured against.
//!
//! `cargo run --release --example bcrypt_rate -- [THREADS] [COST] [SECONDS]` (defaults: one
//! thread per CPU, cost 12, 10 s). Each thread verifies a password against a hash of the given
//! cost, as a login does, with the same `bcrypt` crate the server uses, until the time is up.
//! Prints one line: `bcrypt_rate threads=2 cost=12 seconds=10.21 verifies=84 per_second=8.23`.

use std::thread;
use std::time::{Duration, Instant};

fn arg(position: usize, default: u64) -> u64 {
    std::env::args()
        .nth(position)
        .map(|value| value.parse().expect("arguments are whole numbers"))
        .unwrap_or(default)
}

fn main() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let threads = arg(1, cpus).max(1);
    let cost = u32::try_from(arg(2, 12)).expect("a bcrypt cost is 4 to 31");
    let seconds = arg(3, 10);
    let password = "correct horse battery staple";
    let hash = bcrypt::hash(password, cost).expect("bcrypt hashes");

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            thread::spawn(move || {
                let begun = Instant::now();
                let mut done = 0_u64;
                while Instant::now() < deadline {
                    assert!(bcrypt::verify(password, &hash).expect("the hash is valid"));
                    done += 1;
                }
                // A thread's rate over the time it really spent, its last verify included.
                (done, begun.elapsed().as_secs_f64())
            })
        })
        .collect();
    let (mut verifies, mut per_second) = (0_u64, 0.0_f64);
    for worker in workers {
        let (done, elapsed) = worker.join().expect("a bcrypt thread panicked");
        verifies += done;
        per_second += done as f64 / elapsed;
    }
    println!(
        "bcrypt_rate threads={threads} cost={cost} seconds={:.2} verifies={verifies} per_second={per_second:.2}",
        started.elapsed().as_secs_f64()
    );
}
