/work/main/target/release/engine serve --snapshot /tmp/perf-harness-100000/links.snap --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1 --io uring
