# tools/capture.d/debian.sh — sourced by tools/capture.
# Guest kernels and QEMUs of other versions from Debian's own packages, by name and version, unpacked with
# `dpkg -x` into a private cache (default .build-debian/ in the repository: ignored by git). Nothing is
# installed: apt runs with a private sources list, lists directory and package cache, so the system's apt
# state is untouched. Once a tree is unpacked (its .complete stamp names the packages), later runs use it
# without any download or apt call.
#
# Versions are pinned. Debian's mirror keeps only the current version of each suite: when a pinned version
# has left it, the .deb is looked up on snapshot.debian.org (its /mr/binary API, by name and version). That
# fallback has not been exercised yet: snapshot.debian.org was not reachable from the machine that made
# the bundled captures.

DEB_CACHE=${DEB_CACHE:-$REPO/.build-debian}
DEB_MIRROR=${DEB_MIRROR:-http://deb.debian.org/debian}
DEB_SECURITY=${DEB_SECURITY:-http://deb.debian.org/debian-security}
DEB_SNAPSHOT=${DEB_SNAPSHOT:-https://snapshot.debian.org}

# ---------------------------------------------------------------- the versions
# kernel VERSION -> "package=version suite"
kernel_packages() {
	case $1 in
	5.10) echo "linux-image-5.10.0-32-amd64-unsigned=5.10.223-1 bullseye" ;;
	6.1) echo "linux-image-6.1.0-56-amd64=6.1.192-2 bookworm-security" ;;
	6.12) echo "linux-image-6.12.95+deb12-amd64-unsigned=6.12.95-1~bpo12+1 bookworm-backports" ;;
	*) return 1 ;;
	esac
}
# matching linux-headers + kbuild (for building a guest module against the kernel)
kernel_header_packages() {
	case $1 in
	6.12) echo "linux-headers-6.12.95+deb12-amd64=6.12.95-1~bpo12+1 linux-headers-6.12.95+deb12-common=6.12.95-1~bpo12+1 linux-kbuild-6.12.95+deb12=6.12.95-1~bpo12+1 bookworm-backports" ;;
	*) return 1 ;;
	esac
}
# QEMU VERSION -> "package=version ... suite" (the suite also supplies the libraries the system lacks)
qemu_packages() {
	case $1 in
	5.2) echo "qemu-system-x86=1:5.2+dfsg-11+deb11u3 qemu-system-common=1:5.2+dfsg-11+deb11u3 qemu-system-data=1:5.2+dfsg-11+deb11u3 seabios=1.14.0-2 ipxe-qemu=1.0.0+git-20190125.36a4c85-5.1 bullseye" ;;
	7.2) echo "qemu-system-x86=1:7.2+dfsg-7+deb12u18+b3 qemu-system-common=1:7.2+dfsg-7+deb12u18+b3 qemu-system-data=1:7.2+dfsg-7+deb12u18 seabios=1.16.2-1 ipxe-qemu=1.0.0+git-20190125.36a4c85-5.1 bookworm" ;;
	10.0) echo "qemu-system-x86=1:10.0.2+ds-2+deb13u1~bpo12+1 qemu-system-common=1:10.0.2+ds-2+deb13u1~bpo12+1 qemu-system-data=1:10.0.2+ds-2+deb13u1~bpo12+1 seabios=1.16.3-2~bpo12+1 ipxe-qemu=1.0.0+git-20190125.36a4c85-5.1 bookworm-backports" ;;
	*) return 1 ;;
	esac
}
KERNEL_VERSIONS="5.10 6.1 6.12"
QEMU_VERSIONS="5.2 7.2 10.0"

# ---------------------------------------------------------------- private apt
deb_apt_opts() {
	local a=$DEB_CACHE/apt
	echo "-o Dir::Etc::sourcelist=$a/sources.list -o Dir::Etc::sourceparts=/nonexistent" \
		"-o Dir::State::Lists=$a/lists -o Dir::Cache=$a/cache -o Dir::Etc::preferencesparts=/nonexistent" \
		"-o APT::Sandbox::User=root"
}
deb_apt_update() { # once per run, and only when a package is not in the cache yet
	[[ ${DEB_UPDATED:-0} == 1 ]] && return 0
	local a=$DEB_CACHE/apt k=/usr/share/keyrings/debian-archive-keyring.gpg
	[[ -r $k ]] || die "no $k (apt-get install debian-archive-keyring)"
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
	cat >"$a/sources.list" <<-EOF
		deb [signed-by=$k] $DEB_MIRROR bullseye main
		deb [signed-by=$k] $DEB_MIRROR bookworm main
		deb [signed-by=$k] $DEB_SECURITY bookworm-security main
		deb [signed-by=$k] $DEB_MIRROR bookworm-backports main
		deb [signed-by=$k] $DEB_MIRROR trixie main
	EOF
	note "apt-get update (private lists in $a)"
	# shellcheck disable=SC2046
	apt-get $(deb_apt_opts) update -q >"$a/update.log" 2>&1 || { cat "$a/update.log" >&2; die "private apt-get update failed"; }
	DEB_UPDATED=1
}
deb_file() { # pkg=ver -> path of its .deb in the cache, if there
	local p=${1%%=*} v=${1#*=} f
	v=${v//:/%3a}
	for f in "$DEB_CACHE/debs/${p}_${v}_"*.deb; do [[ -e $f ]] && { echo "$f"; return 0; }; done
	return 1
}
deb_snapshot() { # pkg=ver: fetch from snapshot.debian.org (the version has left the mirror)
	local p=${1%%=*} v=${1#*=} url
	url=$(python3 - "$DEB_SNAPSHOT" "$p" "$v" <<-'PY'
		import json, sys, urllib.parse, urllib.request
		base, pkg, ver = sys.argv[1:]
		q = lambda s: urllib.parse.quote(s, safe="")
		with urllib.request.urlopen(f"{base}/mr/binary/{q(pkg)}/{q(ver)}/binfiles?fileinfo=1", timeout=60) as r:
		    j = json.load(r)
		for f in j["result"]:
		    if f["architecture"] in ("amd64", "all"):
		        print(f"{base}/file/{f['hash']}")
		        break
	PY
	) 2>/dev/null || { note "snapshot.debian.org: no $p=$v (or the host is unreachable)"; return 1; }
	[[ -n $url ]] || return 1
	note "fetching $p=$v from $url"
	curl -fsSL --retry 3 -o "$DEB_CACHE/debs/${p}_${v//:/%3a}_snapshot.deb.part" "$url" || return 1
	mv "$DEB_CACHE/debs/${p}_${v//:/%3a}_snapshot.deb.part" "$DEB_CACHE/debs/${p}_${v//:/%3a}_snapshot.deb"
}
deb_fetch() { # pkg=ver...: download what the cache lacks
	local want=() s
	mkdir -p "$DEB_CACHE/debs"
	for s in "$@"; do deb_file "$s" >/dev/null || want+=("$s"); done
	((${#want[@]})) || return 0
	deb_apt_update
	note "downloading ${want[*]}"
	# shellcheck disable=SC2046
	(cd "$DEB_CACHE/debs" && apt-get $(deb_apt_opts) download -q "${want[@]}") >>"$DEB_CACHE/apt/download.log" 2>&1 || true
	for s in "${want[@]}"; do
		deb_file "$s" >/dev/null && continue
		deb_snapshot "$s" || die "cannot download $s (not on $DEB_MIRROR nor on $DEB_SNAPSHOT; see $DEB_CACHE/apt/download.log)"
	done
}
deb_unpack() { # root pkg=ver...: dpkg -x each into root (once: a stamp names the packages)
	local root=$1 s; shift
	if [[ -e $root/.complete ]] && [[ $(cat "$root/.complete") == "$*" ]]; then return 0; fi
	deb_fetch "$@"
	rm -rf "$root"; mkdir -p "$root"
	for s in "$@"; do dpkg -x "$(deb_file "$s")" "$root"; done
	echo "$*" >"$root/.complete"
}

# Libraries a QEMU binary needs that neither the system nor its tree has: the binary's missing sonames
# (ldd) are matched against the library packages its Depends name (and, round by round, theirs); those
# are downloaded from SUITE (newest version there) and unpacked into the tree's libs/ directory.
soname_key() { # libglib-2.0.so.0 -> libglib20 ; libxenmisc.so.4.14 -> libxenmisc
	local s=${1%%.so*}; s=${s//[-._+]/}; echo "${s,,}"
}
pkg_key() { local s=${1//[-._+]/}; echo "${s,,}"; }
deb_qemu_libs() { # root suite binary
	local root=$1 suite=$2 bin=$3 libs=$1/libs round missing deps d s k best f
	mkdir -p "$libs"
	for round in 1 2 3 4 5 6; do
		mapfile -t missing < <(LD_LIBRARY_PATH=$(qemu_ld_path "$root") ldd "$bin" 2>/dev/null | awk '/not found/ {print $1}')
		((${#missing[@]})) || return 0
		# candidate packages: lib* Depends of every .deb unpacked into this tree
		mapfile -t deps < <(for f in "$root"/.debs/*.deb; do dpkg-deb -f "$f" Depends; done | tr ',' '\n' |
			sed 's/|.*//; s/(.*//; s/:any//; s/ //g' | grep '^lib' | sort -u)
		local fetch=() unnamed=()
		for s in "${missing[@]}"; do
			k=$(soname_key "$s") best=
			for d in "${deps[@]}"; do
				[[ $(pkg_key "$d") == "$k"* ]] || continue
				[[ -z $best || ${#d} -lt ${#best} ]] && best=$d
			done
			if [[ -n $best ]]; then fetch+=("$best"); else unnamed+=("$s"); fi
		done
		deb_apt_update
		if ((${#unnamed[@]})); then
			# sonames whose package is not named after them (libxenctrl.so.4.14 is in libxenmisc4.14):
			# look inside the candidate packages not fetched yet
			local stage=$root/.stage cand=()
			rm -rf "$stage"; mkdir -p "$stage"
			for d in "${deps[@]}"; do
				compgen -G "$root/.debs/${d}_*.deb" >/dev/null && continue
				[[ $(dpkg-query -W -f='${db:Status-Status}' "$d" 2>/dev/null) == installed ]] && continue
				cand+=("$d/$suite")
			done
			# shellcheck disable=SC2046
			for d in "${cand[@]}"; do # one by one: a name that is not in the suite must not stop the others
				(cd "$stage" && apt-get $(deb_apt_opts) download -q "$d") >>"$DEB_CACHE/apt/download.log" 2>&1 || true
			done
			for f in "$stage"/*.deb; do
				[[ -e $f ]] || continue
				for s in "${unnamed[@]}"; do
					if dpkg-deb -c "$f" 2>/dev/null | grep -c "/$s\( \|$\)" >/dev/null; then fetch+=("$(dpkg-deb -f "$f" Package)"); break; fi
				done
			done
			rm -rf "$stage"
		fi
		((${#fetch[@]})) || die "QEMU in $root needs ${unnamed[*]} and no library package among its Depends provides it"
		mapfile -t fetch < <(printf '%s\n' "${fetch[@]}" | sort -u)
		note "libraries for $(basename "$root") from $suite: ${fetch[*]}"
		# shellcheck disable=SC2046
		(cd "$root/.debs" && apt-get $(deb_apt_opts) download -q "${fetch[@]/%//$suite}") >>"$DEB_CACHE/apt/download.log" 2>&1 ||
			die "cannot download ${fetch[*]} from $suite (see $DEB_CACHE/apt/download.log)"
		for s in "${fetch[@]}"; do
			for f in "$root/.debs/${s}_"*.deb; do dpkg -x "$f" "$root/libtree"; done
		done
	done
	die "QEMU in $root still misses libraries after 6 rounds: ${missing[*]}"
}
qemu_ld_path() { # root -> LD_LIBRARY_PATH for its libraries
	local r=$1/libtree
	echo "$r/lib/x86_64-linux-gnu:$r/usr/lib/x86_64-linux-gnu:$r/usr/lib/x86_64-linux-gnu/pulseaudio:$r/usr/lib/x86_64-linux-gnu/ceph"
}

# ---------------------------------------------------------------- kernel and QEMU trees
# Sets KROOT KVER VMLINUZ MODDIR KERNEL_PKGS for kernel VERSION (or the machine's own with "host").
use_kernel() {
	local v=$1 spec suite
	if [[ $v == host ]]; then
		KVER=${KVER:-$(ls /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V | tail -n1)}
		[[ -n $KVER && -r /boot/vmlinuz-$KVER ]] || die "no readable /boot/vmlinuz-* (--kernel host needs an installed kernel)"
		[[ -d /lib/modules/$KVER ]] || die "no /lib/modules/$KVER"
		KROOT=/ VMLINUZ=/boot/vmlinuz-$KVER MODDIR=/lib/modules/$KVER
		KERNEL_PKGS="linux-image-$KVER=$(dpkg-query -W -f='${Version}' "linux-image-$KVER" 2>/dev/null || echo unknown) (installed)"
		return 0
	fi
	spec=$(kernel_packages "$v") || die "unknown --kernel $v (known: $KERNEL_VERSIONS host)"
	suite=${spec##* } spec=${spec% *}
	KROOT=$DEB_CACHE/root/kernel-$v
	deb_unpack "$KROOT" $spec
	VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -n1)
	KVER=${VMLINUZ##*/vmlinuz-}
	MODDIR=$KROOT/lib/modules/$KVER
	KERNEL_PKGS="$spec ($suite)"
}
# Sets QEMU QEMU_ENV QEMU_FW QEMU_PKGS for QEMU VERSION (or the machine's own with "host").
use_qemu() {
	local v=$1 spec suite root f t
	if [[ $v == host ]]; then
		QEMU=${QEMU:-qemu-system-x86_64} QEMU_ENV=() QEMU_FW=
		command -v "$QEMU" >/dev/null || die "--qemu host: no $QEMU on PATH"
		QEMU_PKGS="qemu-system-x86=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || echo unknown) (installed)"
		return 0
	fi
	spec=$(qemu_packages "$v") || die "unknown --qemu $v (known: $QEMU_VERSIONS host)"
	suite=${spec##* } spec=${spec% *}
	root=$DEB_CACHE/root/qemu-$v
	if ! { [[ -e $root/.complete ]] && [[ $(cat "$root/.complete") == "$spec" ]]; }; then
		deb_fetch $spec
		rm -rf "$root"; mkdir -p "$root/.debs" "$root/libtree"
		for s in $spec; do f=$(deb_file "$s"); dpkg -x "$f" "$root"; ln -s "$f" "$root/.debs/"; done
		# QEMU's data directory (-L): its files, with the absolute symlinks into seabios/ipxe resolved
		# inside the tree (they point to /usr/share/seabios, /usr/lib/ipxe/qemu on an installed system),
		# plus those two directories themselves (Debian's later QEMUs find the BIOS there through their
		# built-in --firmwarepath, which names the system's directories, not the tree's).
		mkdir -p "$root/fw"
		for f in "$root"/usr/share/qemu/* "$root"/usr/share/seabios/* "$root"/usr/lib/ipxe/qemu/*; do
			[[ -e $f && ! -e $root/fw/${f##*/} ]] || continue
			t=$f
			while [[ -L $t ]]; do
				local l; l=$(readlink "$t")
				if [[ $l == /* ]]; then t=$root$l; else t=$(dirname "$t")/$l; fi
			done
			[[ -e $t ]] && ln -sfn "$(realpath "$t")" "$root/fw/${f##*/}"
		done
		local suites=$suite
		[[ $suite == bookworm-backports ]] && suites=bookworm
		deb_qemu_libs "$root" "$suites" "$root/usr/bin/qemu-system-x86_64"
		(cd "$root/.debs" && ls) >"$root/.packages"
		echo "$spec" >"$root/.complete"
	fi
	QEMU=$root/usr/bin/qemu-system-x86_64
	QEMU_FW=$root/fw
	QEMU_ENV=(LD_LIBRARY_PATH="$(qemu_ld_path "$root")" QEMU_MODULE_DIR="$root/usr/lib/x86_64-linux-gnu/qemu")
	QEMU_PKGS="$spec ($suite); libraries: $(sed 's/_amd64\.deb$//; s/_all\.deb$//; s/%3a/:/' "$root/.packages" | grep -v -e '^qemu-system' -e '^seabios' -e '^ipxe' | sed 's/_/=/' | tr '\n' ' ')"
}
run_qemu() { env "${QEMU_ENV[@]}" "$QEMU" "$@"; }
