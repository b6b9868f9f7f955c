fn main() {
    let mut chunk = Vec::new();
    for i in 0..3000u64 { chunk.extend_from_slice(format!("{{\"time\":{},\"kpi\":12.5,\"host\":\"srv-1\",\"region\":\"eu\",\"note\":\"x\"}}\n", 1700000000000u64 + i).as_bytes()); }
    let t = std::time::Instant::now();
    let mut n = 0usize;
    for _ in 0..1000 { n += memchr::memchr_iter(b'\n', std::hint::black_box(&chunk)).count(); }
    let dt = t.elapsed().as_secs_f64();
    println!("memchr {:.3} GB/s {}", (chunk.len() * 1000) as f64 / dt / 1e9, n);
    let t = std::time::Instant::now();
    let mut s = 0u64;
    for _ in 0..1000 { for &b in std::hint::black_box(&chunk).iter() { s = s.wrapping_add(b as u64); } }
    let dt = t.elapsed().as_secs_f64();
    println!("byte loop {:.3} GB/s {}", (chunk.len() * 1000) as f64 / dt / 1e9, s);
}
