#!/bin/sh
# Signs nitro executables for the security chip (src/securitychip/chip.h).
#   tools/sign.sh keygen DIR        make DIR/dev-anchor.pem (private, 0600) and
#                                   DIR/dev-anchor.pub.pem, unless they exist
#   tools/sign.sh sign KEY FILE...  write FILE.sig: Ed25519 by KEY over FILE's raw SHA-384
# make runs both with the development key in build/keys (never committed); a production
# build signs with its own key (make SIGNING_KEY=/path/key.pem) and nitrod is pointed at
# the matching public key (NITRO_TRUST_ANCHOR or --trust-anchor).
set -eu
cmd=${1:-}
case "$cmd" in
keygen)
	dir=$2
	[ -s "$dir/dev-anchor.pem" ] && [ -s "$dir/dev-anchor.pub.pem" ] && exit 0
	umask 077
	mkdir -p "$dir"
	openssl genpkey -algorithm ed25519 -out "$dir/dev-anchor.pem.tmp" 2>/dev/null
	openssl pkey -in "$dir/dev-anchor.pem.tmp" -pubout -out "$dir/dev-anchor.pub.pem.tmp"
	chmod 644 "$dir/dev-anchor.pub.pem.tmp"
	mv "$dir/dev-anchor.pub.pem.tmp" "$dir/dev-anchor.pub.pem"
	mv "$dir/dev-anchor.pem.tmp" "$dir/dev-anchor.pem"
	echo "sign.sh: made the development trust anchor $dir/dev-anchor.pub.pem" >&2
	;;
sign)
	key=$2
	shift 2
	[ -r "$key" ] || { echo "sign.sh: signing key $key: not readable" >&2; exit 1; }
	for f in "$@"; do
		[ -f "$f" ] || { echo "sign.sh: $f: no such file" >&2; exit 1; }
		openssl dgst -sha384 -binary "$f" >"$f.sig.d"
		if ! openssl pkeyutl -sign -inkey "$key" -rawin -in "$f.sig.d" -out "$f.sig.tmp"; then
			rm -f "$f.sig.d" "$f.sig.tmp"
			echo "sign.sh: $f: signing with $key failed" >&2
			exit 1
		fi
		rm -f "$f.sig.d"
		mv "$f.sig.tmp" "$f.sig"
	done
	;;
*)
	echo "usage: sign.sh keygen DIR | sign KEY FILE..." >&2
	exit 2
	;;
esac
