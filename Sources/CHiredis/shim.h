#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H
// Only the RESP reader and the command formatter are used: sockets are SwiftNIO's.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
