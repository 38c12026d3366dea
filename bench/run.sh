#!/bin/sh
# make bench: every benchmark beside its named peer, measured in the same run.
# The boot benchmark needs hardware KVM: it runs inside one emulated host unless this
# machine has it.
set -eu
cd "$(dirname "$0")/.."
if grep -qwE 'svm|vmx' /proc/cpuinfo && [ -w /dev/kvm ]; then
	/usr/bin/python3 bench/boot.py
else
	build/nitro emuhost --memory 2048 -- /usr/bin/python3 bench/boot.py
fi
