.PHONY: demo test lint venv

demo:
	./dev demo

test:
	./dev test

lint:
	./dev lint

venv:
	./dev venv

# Packages (packaging/README.md). VERSION=0.3.1~test1 builds the same tree as another
# package version; an up-to-date package in dist/ is reused (FORCE=1 rebuilds).
.PHONY: deb rpm
deb:
	VERSION=$(VERSION) packaging/build-deb.sh

rpm:
	VERSION=$(VERSION) packaging/build-rpm.sh

# Benchmarks against the reference tenement 0.2.2 (bench/); writes BENCHMARKS.md (~10 min).
.PHONY: bench
bench: venv
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y wrk; } \
		|| { echo "bench: wrk is missing: sudo apt-get install wrk" >&2; exit 1; }
	.venv/bin/python -m bench.run --out BENCHMARKS.md --json bench/.work/last-run.json
