#!/bin/sh
# /init of the dmatrace capture initramfs (busybox sh, runs as PID 1 in the guest).
# Reads /etc/capture.conf (written by tools/capture), enables DMA tracepoints,
# loads the virtio modules, runs the workload, and tars the results to the
# virtio-blk disk whose serial is "dmatrace-out". Then powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug
T=/sys/kernel/tracing
[ -e $T/trace ] || T=/sys/kernel/debug/tracing
. /etc/capture.conf
O=/tmp/out
mkdir -p $O/tracefs
log() { echo "dmatrace-guest: $*"; echo "$(cut -d' ' -f1 /proc/uptime) $*" >> $O/guest-steps.log; }
fail_off() { log "FATAL: $*"; dmesg > $O/guest-dmesg.txt; finish; }

finish() {
	log "writing results"
	tar -cf /tmp/out.tar -C $O . && dd if=/tmp/out.tar of=/dev/$OUTDEV bs=64k conv=fsync 2>/dev/null
	sync
	echo "dmatrace-guest: DONE"
	poweroff -f
}

# HANG_GUARD=1 (configurations whose devices may never complete a DMA, e.g. a vIOMMU the guest has no
# driver for): modules probe asynchronously (the generic async_probe module parameter), and a workload step
# that does not finish in time is left behind (in D state) instead of stopping the run, so the results
# still reach the output disk, whose DMA never goes through an IOMMU (no iommu_platform).
guard() { # seconds what command...
	local s=$1 w=$2 p n=0
	shift 2
	if [ "$HANG_GUARD" != 1 ]; then "$@"; return; fi
	"$@" &
	p=$!
	while kill -0 $p 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt $((s * 5)) ]; then log "HANG: $w did not finish in ${s} s (left behind)"; return 1; fi
		usleep 200000
	done
	wait $p
}
serial() { # vdX: its virtio-blk serial (reading it is a request to the device: bounded under HANG_GUARD)
	local p n=0
	if [ "$HANG_GUARD" != 1 ]; then cat /sys/block/$1/serial 2>/dev/null; return; fi
	cat /sys/block/$1/serial > /tmp/serial.$1 2>/dev/null &
	p=$!
	while kill -0 $p 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt 25 ]; then log "HANG: reading /sys/block/$1/serial (left behind)"; return; fi
		usleep 200000
	done
	cat /tmp/serial.$1
}
log "kernel $(uname -r) cmdline: $(cat /proc/cmdline)"
# Ring buffer: large enough that nothing is overwritten during the workload.
echo "$BUFFER_KB" > $T/buffer_size_kb
for ev in iommu swiotlb dma; do
	if [ -d $T/events/$ev ]; then echo 1 > $T/events/$ev/enable; log "enabled events/$ev"; else log "no events/$ev in this kernel"; fi
done
echo 1 > $T/tracing_on

for m in $MODULES; do
	if [ "$HANG_GUARD" = 1 ]; then
		insmod /lib/modules/$m.ko async_probe=1 || log "insmod $m failed"
	else
		insmod /lib/modules/$m.ko || log "insmod $m failed"
	fi
done
sleep 1
if [ "$HANG_GUARD" = 1 ]; then
	n=0
	until [ -n "$(ls /sys/block | grep vd)" ] || [ $n -ge 60 ]; do n=$((n + 1)); usleep 500000; done
	sleep 2
	log "after module loading: $(ls /sys/block | tr '\n' ' ')"
fi

# Identify the disks by serial.
OUTDEV= ; SCRDEV=
for d in /sys/block/vd*; do
	[ -e "$d" ] || continue
	s=$(serial ${d##*/})
	case "$s" in
	dmatrace-out) OUTDEV=${d##*/} ;;
	dmatrace-scratch) SCRDEV=${d##*/} ;;
	esac
done
log "scratch disk=$SCRDEV out disk=$OUTDEV"
[ -n "$OUTDEV" ] || { echo "dmatrace-guest: FATAL: no output disk"; poweroff -f; }
[ -n "$SCRDEV" ] || [ "$HANG_GUARD" = 1 ] || fail_off "no scratch disk"

# ---- workload: virtio-blk ----
if [ -n "$SCRDEV" ]; then
	log "blk: read ${BLK_READ_KB} KiB (O_DIRECT, 64 KiB requests)"
	guard 30 "blk O_DIRECT read" dd if=/dev/$SCRDEV of=/dev/null bs=64k count=$((BLK_READ_KB / 64)) iflag=direct 2>>$O/guest-steps.log
	log "blk: write ${BLK_WRITE_KB} KiB (O_DIRECT, 4 KiB requests) at 32 MiB"
	guard 30 "blk O_DIRECT write" dd if=/dev/urandom of=/dev/$SCRDEV bs=4k count=$((BLK_WRITE_KB / 4)) seek=8192 oflag=direct conv=fsync 2>>$O/guest-steps.log
	log "blk: buffered read ${BLK_READ_KB} KiB at 16 MiB"
	guard 30 "blk buffered read" dd if=/dev/$SCRDEV of=/dev/null bs=64k count=$((BLK_READ_KB / 64)) skip=256 2>>$O/guest-steps.log
else
	log "blk: HANG: no usable scratch disk, blk workload skipped"
fi

# ---- workload: virtio-net (slirp, restrict=on: only the gateway answers) ----
NETIF=
for n in /sys/class/net/*; do
	[ "${n##*/}" = lo ] && continue
	[ -e $n/device ] && { NETIF=${n##*/}; break; }
done
if [ -n "$NETIF" ]; then
	ip link set lo up
	ip link set $NETIF up
	log "net: DHCP on $NETIF"
	if guard 30 "DHCP" udhcpc -i $NETIF -n -q -t 5 -T 2 -s /etc/udhcpc.script >>$O/guest-steps.log 2>&1; then
		log "net: DHCP ok: $(ip -4 addr show $NETIF | grep inet)"
	else
		log "net: DHCP failed, static 10.0.2.15/24"
		ip addr add 10.0.2.15/24 dev $NETIF
	fi
	log "net: ping gateway 10.0.2.2 x$PING_COUNT"
	guard 30 "ping" ping -c $PING_COUNT -i 0.2 -s 1000 10.0.2.2 >>$O/guest-steps.log 2>&1 || log "net: ping failed"
	for c in rx_packets tx_packets rx_bytes tx_bytes; do echo "$NETIF $c $(cat /sys/class/net/$NETIF/statistics/$c)"; done >> $O/guest-steps.log
else
	log "net: no network interface"
fi

# ---- workload: stray DMA from the edu device (no driver) ----
EDU=
for p in /sys/bus/pci/devices/*; do
	[ "$(cat $p/vendor)" = 0x1234 ] && [ "$(cat $p/device)" = 0x11e8 ] && EDU=$p
done
if [ -n "$EDU" ]; then
	BAR0=$(head -n1 $EDU/resource | cut -d' ' -f1)
	log "edu: ${EDU##*/} BAR0=$BAR0; enabling memory + bus master (command=0x06)"
	printf '\006\000' | dd of=$EDU/config bs=1 seek=4 count=2 conv=notrunc 2>/dev/null
	B=$((BAR0))
	log "edu: ident=$(devmem $((B + 0x0)) 32)"
	log "edu: DMA read  RAM->dev src=$EDU_READ_ADDR len=$EDU_LEN"
	devmem $((B + 0x80)) 64 $EDU_READ_ADDR
	devmem $((B + 0x88)) 64 0x40000
	devmem $((B + 0x90)) 64 $EDU_LEN
	devmem $((B + 0x98)) 64 1
	sleep 1
	log "edu: status after read DMA cmd=$(devmem $((B + 0x98)) 64)"
	# Put a marker at the write target (memmap=-reserved, so /dev/mem may touch
	# it) to see afterwards whether the stray write reached guest RAM.
	devmem $EDU_WRITE_ADDR 64 0xd3adb33fd3adb33f 2>>$O/guest-steps.log
	log "edu: marker at $EDU_WRITE_ADDR before write DMA = $(devmem $EDU_WRITE_ADDR 64 2>&1)"
	log "edu: DMA write dev->RAM dst=$EDU_WRITE_ADDR len=$EDU_LEN"
	devmem $((B + 0x80)) 64 0x40000
	devmem $((B + 0x88)) 64 $EDU_WRITE_ADDR
	devmem $((B + 0x90)) 64 $EDU_LEN
	devmem $((B + 0x98)) 64 3
	sleep 1
	log "edu: status after write DMA cmd=$(devmem $((B + 0x98)) 64)"
	m=$(devmem $EDU_WRITE_ADDR 64 2>&1)
	log "edu: marker at $EDU_WRITE_ADDR after write DMA = $m"
	case "$m" in
	0xD3ADB33FD3ADB33F|0xd3adb33fd3adb33f) log "edu: RESULT write DMA did not reach guest RAM at $EDU_WRITE_ADDR" ;;
	0x*) log "edu: RESULT write DMA reached guest RAM at $EDU_WRITE_ADDR (marker overwritten)" ;;
	*) log "edu: RESULT unknown (cannot read $EDU_WRITE_ADDR via /dev/mem)" ;;
	esac
else
	log "edu: device 1234:11e8 not found"
fi
sleep 1

# ---- workload: DMA-API rules broken on purpose (dma-api-violation: capture.d/dmabug binds the edu) ----
if [ "$DMABUG" = 1 ]; then
	log "dmabug: insmod (binds 1234:11e8; wrong unmap size, wrong unmap direction, one mapping never unmapped)"
	insmod /lib/modules/dmabug.ko || log "insmod dmabug failed"
	sleep 1
	dmesg | grep dmabug >> $O/guest-steps.log
fi

# ---- collect ----
echo 0 > $T/tracing_on
log "collect: tracefs trace text"
cat $T/trace > $O/guest-ftrace.txt
for f in $T/events/iommu/*/format $T/events/swiotlb/*/format $T/events/dma/*/format $T/events/intel_iommu/*/format; do
	[ -e "$f" ] || continue
	e=${f%/format}; cp $f $O/tracefs/format_$(basename $(dirname $e))_$(basename $e).txt
done
cp $T/events/header_page $O/tracefs/header_page.txt
cp $T/events/header_event $O/tracefs/header_event.txt
cp $T/trace_clock $O/tracefs/trace_clock.txt
# Guest facts for config.json
{
	echo "kernel_release=$(uname -r)"
	echo "kernel_version=$(uname -v)"
	echo "cmdline=$(cat /proc/cmdline)"
	echo "scratch_disk=$SCRDEV"
	echo "out_disk=$OUTDEV"
	echo "netif=$NETIF"
	[ -n "$SCRDEV" ] && echo "scratch_bdf=$(basename $(dirname $(readlink -f /sys/block/$SCRDEV/device)))"
	[ -n "$NETIF" ] && echo "net_bdf=$(basename $(readlink -f /sys/class/net/$NETIF/device/..))"
	for g in /sys/kernel/iommu_groups/*; do
		[ -e "$g/type" ] && echo "iommu_group_${g##*/}_type=$(cat $g/type)"
	done
} > $O/guest-info.txt
for p in /sys/bus/pci/devices/*; do
	drv=; [ -e $p/driver ] && drv=$(basename $(readlink $p/driver))
	grp=; [ -e $p/iommu_group ] && grp=$(basename $(readlink $p/iommu_group))
	echo "${p##*/} $(cat $p/vendor):$(cat $p/device) class=$(cat $p/class) driver=$drv iommu_group=$grp"
done > $O/guest-pci.txt
if [ "$TRACE_CMD" = 1 ]; then
	# trace-cmd 3.1 "extract" always writes its default file version (6); the
	# v7 zstd file is made from it with "trace-cmd convert".
	log "collect: trace-cmd extract (default file version)"
	trace-cmd extract -o /tmp/extract.dat >>$O/guest-steps.log 2>&1 || log "trace-cmd extract failed"
	if [ -s /tmp/extract.dat ]; then
		log "collect: trace-cmd convert to v7 zstd"
		trace-cmd convert -i /tmp/extract.dat --file-version 7 --compression zstd -o $O/guest-trace-cmd-v7-zstd.dat >>$O/guest-steps.log 2>&1 || log "trace-cmd convert failed"
		if [ "$TRACE_CMD_V6" = 1 ]; then
			trace-cmd convert -i /tmp/extract.dat --file-version 6 --compression none -o $O/guest-trace-cmd-v6.dat >>$O/guest-steps.log 2>&1 || log "trace-cmd convert to v6 failed"
		fi
		rm -f /tmp/extract.dat
	fi
fi
dmesg > $O/guest-dmesg.txt
finish
