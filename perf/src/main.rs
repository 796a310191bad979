fn main() {
    eprintln!("perf: the load generator is not built yet (see the open issues); exiting");
    std::process::exit(2);
}
