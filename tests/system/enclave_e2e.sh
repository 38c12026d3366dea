#!/bin/sh
# test_enclave.py's steps inside the parent instance (the default guest image with
# /enclave/*.eif and /bin/enclave-parent: build/enclave/parent-initrd.img, which carries
# this file as /enclave/e2e.sh). Each step prints E2E-* lines the test reads on the console.
#   e2e.sh run            run idle.eif (timed to its heartbeat), look at its memory from
#                         the parent (enclave-peek), try to online its CPU (fails: held),
#                         terminate it; CPUs and pages back (the CPU onlines again)
#   e2e.sh attest NONCE   run test.eif; its payload's attestation comes back over vsock
#   e2e.sh two            three runs started at the same moment in a pool of two CPUs:
#                         two enclaves boot at once, the third is refused; then
#                         terminate one by one
#   e2e.sh console        a debug-mode hello.eif; the parent stays up 30 s after it ended
#                         (the host reads its console meanwhile)
#   e2e.sh vconsole       a debug-mode idle.eif's console read in the parent over vsock
#                         (nitro-enclave console) until terminate ends it; a production
#                         enclave's console refused
#   e2e.sh malformed      damaged and truncated EIFs are refused before anything is taken;
#                         a well-formed one whose kernel is no bzImage is refused at START
set -u
POOL=/sys/module/nitro_enclaves/parameters/ne_cpus
HP=/sys/kernel/mm/hugepages/hugepages-2048kB
state() {
	echo "E2E-STATE $1 pool=$(cat $POOL) online=$(cat /sys/devices/system/cpu/online)" \
		"hp_free=$(cat $HP/free_hugepages) hp_nr=$(cat $HP/nr_hugepages)"
}
ms() { # milliseconds since boot (/proc/uptime: 10 ms steps)
	read -r up _ < /proc/uptime
	c=${up#*.}; c=${c#0}
	echo $((${up%.*} * 1000 + c * 10))
}
runit() { # NAME ARGS...: nitro-enclave run, its JSON on one line, its status and duration
	n=$1; shift
	t0=$(ms)
	out=$(nitro-enclave run "$@" 2>/tmp/err.$n); st=$?
	t1=$(ms)
	json=$(echo "$out" | tr -d '\n ')
	echo "E2E-RUN $n status=$st ms=$((t1 - t0)) json=$json err=$(cat /tmp/err.$n)"
	echo "E2E-SPAN $n $t0 $t1"
}
describe() { echo "E2E-DESCRIBE $1 $(nitro-enclave describe | tr -d '\n ')"; }
[ -e /dev/nitro_enclaves ] || echo "E2E-NO-DEVICE"
case "$1" in
run)
	state before
	runit idle --eif-path /enclave/idle.eif --cpu-count 1 --memory 256 --enclave-name idle
	state running
	describe running
	pid=$(echo "$json" | sed -n 's/.*"ProcessID":\([0-9]*\).*/\1/p')
	[ -n "$pid" ] && enclave-peek "$pid" | sed 's/^/E2E-/'
	# root onlines the donated CPU: its vCPU is held by nitro-hv, the bring-up times out
	t0=$(ms)
	echo 1 > /sys/devices/system/cpu/cpu1/online 2>/tmp/err.online; st=$?
	echo "E2E-ONLINE held status=$st ms=$(($(ms) - t0))" \
		"cpu1=$(cat /sys/devices/system/cpu/cpu1/online) err=$(cat /tmp/err.online)"
	echo "E2E-TERMINATE idle $(nitro-enclave terminate --enclave-id idle | tr -d '\n ')"
	describe after
	state after
	# released: the pool teardown onlined CPU 1 (state after); offline, online it again
	echo 0 > /sys/devices/system/cpu/cpu1/online
	echo 1 > /sys/devices/system/cpu/cpu1/online; st=$?
	echo "E2E-ONLINE released status=$st cpu1=$(cat /sys/devices/system/cpu/cpu1/online)"
	;;
attest)
	state before
	enclave-parent 5005 "$2" /tmp/release &
	p=$!
	runit attest --eif-path /enclave/test.eif --cpu-count 1 --memory 256
	describe running # (its payload waits for enclave-parent to let go)
	touch /tmp/release
	wait $p
	echo "E2E-PARENT status=$?"
	i=0 # the enclave powers off once its payload ends; its process then leaves
	while [ $i -lt 60 ] && [ "$(nitro-enclave describe | tr -d '\n ')" != "[]" ]; do
		sleep 1; i=$((i + 1))
	done
	describe after
	nitro-enclave terminate --all >/dev/null
	state after
	;;
two)
	echo 1-2 > $POOL # several enclaves at once: the user sets a pool of two CPUs
	state before
	for n in one two three; do # started at the same moment; room for two of them
		case $n in
		one) cid=;; two) cid="--enclave-cid 20";; three) cid="--enclave-cid 21";;
		esac
		# shellcheck disable=SC2086
		runit $n --eif-path /enclave/idle.eif --cpu-count 1 --memory 192 \
			--enclave-name $n $cid >/tmp/run.$n &
	done
	wait
	cat /tmp/run.one /tmp/run.two /tmp/run.three
	state running
	describe both
	first=$(nitro-enclave describe | sed -n 's/.*"EnclaveName": "\([a-z]*\)".*/\1/p' | head -n 1)
	echo "E2E-TERMINATE $first $(nitro-enclave terminate --enclave-id "$first" | tr -d '\n ')"
	describe one-left
	echo "E2E-TERMINATE all $(nitro-enclave terminate --all | tr -d '\n ')"
	describe none
	state after
	ls /run/nitro_enclaves | tr '\n' ' ' | sed 's/^/E2E-RUNDIR /'; echo
	;;
console)
	runit dbg --eif-path /enclave/hello.eif --cpu-count 1 --memory 256 --debug-mode \
		--enclave-name dbg
	i=0
	while [ $i -lt 60 ] && [ "$(nitro-enclave describe | tr -d '\n ')" != "[]" ]; do
		sleep 1; i=$((i + 1))
	done
	describe after
	echo "E2E-CONSOLE-WAIT"
	sleep 30
	;;
vconsole)
	runit vdbg --eif-path /enclave/idle.eif --cpu-count 1 --memory 256 --debug-mode \
		--enclave-name vdbg
	rm -f /tmp/con.st
	(nitro-enclave console --enclave-id vdbg >/tmp/con 2>/tmp/con.err; echo $? >/tmp/con.st) &
	i=0 # its boot output is kept: it comes first whenever the console connects
	while [ $i -lt 60 ] && ! grep -q "enclave init: running" /tmp/con 2>/dev/null; do
		sleep 1; i=$((i + 1))
	done
	echo "E2E-CONSOLE-LIVE $([ -e /tmp/con.st ] && echo ended || echo reading)"
	echo "E2E-TERMINATE vdbg $(nitro-enclave terminate --enclave-id vdbg | tr -d '\n ')"
	i=0 # the enclave's end ends the console's stream
	while [ $i -lt 60 ] && [ ! -e /tmp/con.st ]; do sleep 1; i=$((i + 1)); done
	echo "E2E-CONSOLE-STATUS $(cat /tmp/con.st 2>/dev/null || echo none) $(cat /tmp/con.err)"
	tr -d '\r' </tmp/con | sed 's/^/E2E-CON: /'
	runit prod --eif-path /enclave/idle.eif --cpu-count 1 --memory 256 --enclave-name prod
	nitro-enclave console --enclave-id prod >/dev/null 2>/tmp/con.err
	echo "E2E-CONSOLE-PROD $? $(cat /tmp/con.err)"
	nitro-enclave terminate --all >/dev/null
	describe after
	;;
malformed)
	state before
	cp /enclave/hello.eif /tmp/bad.eif
	printf 'X' | dd of=/tmp/bad.eif bs=1 seek=600 conv=notrunc 2>/dev/null
	runit flipped --eif-path /tmp/bad.eif --cpu-count 1 --memory 128
	head -c 1000 /enclave/hello.eif > /tmp/short.eif
	runit truncated --eif-path /tmp/short.eif --cpu-count 1 --memory 128
	runit toosmall --eif-path /enclave/hello.eif --cpu-count 1 --memory 63
	runit notbz --eif-path /enclave/notbz.eif --cpu-count 1 --memory 128
	describe after
	state after
	;;
esac
echo "E2E-DONE $1"
