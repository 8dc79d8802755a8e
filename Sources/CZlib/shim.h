#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
// zlib from the system (Debian zlib1g-dev): gzip decompression of ingest inputs.
#include <zlib.h>
#endif
