#!/bin/sh
# Guest side of test_ne.py (runs as nitro_exec in build/ne-guest.img): loads the stock
# nitro_enclaves module (from the default image, or the copy in /lib/ne), gives it core 1
# (CPUs 2 and 3) of the 4-vCPU parent and 2 MiB hugepages, then runs /bin/ne-ioctl.
dmesg -n 1 # kernel messages stay in the ring (read at the end), off the console
grep -q '^nitro_enclaves ' /proc/modules || insmod /lib/ne/nitro_enclaves.ko
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1d0f:0xe4c1 ] &&
		echo "ne pci: ${d##*/} class $(cat "$d/class") driver $(basename "$(readlink "$d/driver")")"
done
[ -c /dev/nitro_enclaves ] && echo "ne dev: /dev/nitro_enclaves"
for c in /sys/devices/system/cpu/cpu[0-9]*; do
	echo "ne topology: ${c##*/} core $(cat "$c/topology/core_id") siblings $(cat "$c/topology/thread_siblings_list")"
done
echo 40 > /proc/sys/vm/nr_hugepages
echo "ne hugepages: $(cat /proc/sys/vm/nr_hugepages)"
echo 0 > /sys/module/nitro_enclaves/parameters/ne_cpus 2>/dev/null && echo "ne cpu0 accepted"
# The pool takes whole cores, never CPU 0's: CPU 1 is CPU 0's sibling, CPU 2 half of core 1.
echo 1 > /sys/module/nitro_enclaves/parameters/ne_cpus 2>/dev/null && echo "ne cpu1 accepted"
echo 2 > /sys/module/nitro_enclaves/parameters/ne_cpus 2>/dev/null && echo "ne cpu2 accepted"
echo 2,3 > /sys/module/nitro_enclaves/parameters/ne_cpus && echo "ne cpus: $(cat /sys/module/nitro_enclaves/parameters/ne_cpus)"
echo "ne online: $(cat /sys/devices/system/cpu/online)"
/bin/ne-ioctl
echo "ne irqs: $(grep -c enclave_ /proc/interrupts) $(awk '/enclave_cmd/ {n = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i; print "cmd=" n}' /proc/interrupts)"
dmesg | grep -i 'nitro_enclaves\|enclave' | tail -n 40
