#!/bin/sh
# make bench: every benchmark beside its named peer, measured in the same run.
# The boot benchmark needs hardware KVM: it runs inside one emulated host unless this
# machine has it.
set -eu
cd "$(dirname "$0")/.."
# Block: the test driver against nitro-card-ebs and qemu-storage-daemon (no KVM needed).
/usr/bin/python3 bench/blk.py
# Snapshots: an incremental snapshot of a 1 GiB volume with 1 MiB changed (time, bytes stored).
/usr/bin/python3 bench/snapshot.py
# Network: the test driver through two nitro-card-vpc cards vs dpdk-testpmd io forwarding.
/usr/bin/python3 bench/net.py
# IMDS: GET instance-id with a token through the card's lwIP, in the emulated host (the
# issue's target is for it) beside the same harness's ARP round trip.
build/nitro emuhost --memory 1024 -- /usr/bin/python3 bench/imds.py
# Controller: nitrod start-up, describe latency, launch cost vs nitro run (in an emulated host).
/usr/bin/python3 bench/api.py
if grep -qwE 'svm|vmx' /proc/cpuinfo && [ -w /dev/kvm ]; then
	/usr/bin/python3 bench/boot.py
	/usr/bin/python3 bench/tpm.py
else
	build/nitro emuhost --memory 2048 -- /usr/bin/python3 bench/boot.py
	# NitroTPM: GetRandom round trip vs QEMU tpm-crb + swtpm, and the boot cost of --tpm.
	build/nitro emuhost --memory 2048 -- /usr/bin/python3 bench/tpm.py
fi
# Nitro Enclaves: nitro-enclave run to the heartbeat in a parent vs nitro run of the same
# kernel + ramdisks, and the NSM's attestation p99 timed in the enclave (in an emulated host).
build/nitro emuhost --memory 3072 -- /usr/bin/python3 bench/enclave.py
# NVMe: fio 4 KiB randread QD32 in the same guest: nitro's NVMe vs QEMU's nvme (ioeventfd)
# on a null back end, and vs nitro's virtio-blk on the same card back end (needs KVM).
if grep -qwE 'svm|vmx' /proc/cpuinfo && [ -w /dev/kvm ]; then
	/usr/bin/python3 bench/nvme.py
else
	build/nitro emuhost --memory 2048 -- /usr/bin/python3 bench/nvme.py
fi
