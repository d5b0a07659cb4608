module sockit.bench/plainhttp

go 1.26.0
