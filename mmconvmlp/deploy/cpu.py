"""What this CPU computes natively: the flags that decide whether a
low-precision path pays (bf16 and int8 dot products)."""
import torch


def cpu_flags():
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be
    read)."""
    try:
        with open('/proc/cpuinfo') as f:
            line = next((line for line in f if line.startswith('flags')), ':')
    except OSError:
        return set()
    return set(line.split(':', 1)[1].split())


def native_bf16():
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX-512 BF16 or
    AMX); elsewhere it emulates it, several times slower than float32."""
    check = getattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', None)
    return bool(check is not None and check())


def native_int8():
    """Whether this CPU has int8 dot-product instructions (AVX-512 VNNI,
    AVX-VNNI or AMX). Without them, uint8 x int8 products saturate in 16
    bits, so int8 weights should use 7 bits (``reduce_range``)."""
    return bool(cpu_flags() & {'avx512_vnni', 'avx_vnni', 'amx_int8'})
