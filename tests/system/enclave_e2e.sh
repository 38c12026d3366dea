#!/bin/sh
# test_enclave.py's steps inside the parent instance (the default guest image with
# /enclave/*.eif and /bin/enclave-parent: build/enclave/parent-initrd.img, which carries
# this file as /enclave/e2e.sh). Each step prints E2E-* lines the test reads on the console.
#   e2e.sh run            run idle.eif (timed to its heartbeat), look at its memory from
#                         the parent (enclave-peek), terminate it; CPUs and pages back
#   e2e.sh attest NONCE   run test.eif; its payload's attestation comes back over vsock
#   e2e.sh two            two enclaves at once, then terminate one by one
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
	out=$(nitro-enclave run "$@" 2>/tmp/err); st=$?
	t1=$(ms)
	json=$(echo "$out" | tr -d '\n ')
	echo "E2E-RUN $n status=$st ms=$((t1 - t0)) json=$json err=$(cat /tmp/err)"
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
	echo "E2E-TERMINATE idle $(nitro-enclave terminate --enclave-id idle | tr -d '\n ')"
	describe after
	state after
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
	echo 1-2 > $POOL # two enclaves at once: the user sets a pool of two CPUs
	state before
	runit one --eif-path /enclave/idle.eif --cpu-count 1 --memory 192 --enclave-name one
	runit two --eif-path /enclave/idle.eif --cpu-count 1 --memory 192 --enclave-name two \
		--enclave-cid 20
	state running
	describe both
	echo "E2E-TERMINATE one $(nitro-enclave terminate --enclave-id one | tr -d '\n ')"
	describe one-left
	echo "E2E-TERMINATE all $(nitro-enclave terminate --all | tr -d '\n ')"
	describe none
	state after
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
