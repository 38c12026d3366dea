# The shape of the tree (issue 11): tests/arch/cycles.py derives the include graph of src/
# per module (x.c with x.h) and per folder; arch-test fails on an import circle or on
# src/cli or src/controller including the hypervisor or a card. Needs no build.
.PHONY: arch-test
arch-test:
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/arch
TEST_SUITES += arch-test
