# The two commands of the README, and the benchmark.
.PHONY: dev test bench scale
dev:
	@bash scripts/dev.sh
test:
	@bash scripts/test.sh
bench:
	@bash scripts/bench.sh
scale:
	@bash scripts/scale.sh
