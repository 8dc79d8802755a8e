#ifndef CZSTD_SHIM_H
#define CZSTD_SHIM_H
// Stable API only (no ZSTD_STATIC_LINKING_ONLY): safe against Debian's shared libzstd.
#include <zstd.h>
#include <zstd_errors.h>
#endif
