# The two commands of the README.
.PHONY: dev test
dev:
	@bash scripts/dev.sh
test:
	@bash scripts/test.sh
