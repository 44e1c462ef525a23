fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[2].parse().unwrap();
    let now = f2b::engine::now_us() - 3_600_000_000;
    f2b::source::export::write_journal(
        std::path::Path::new(&args[1]),
        f2b::source::export::synthetic(n, now, 1000, 50),
    )
    .unwrap();
}
