// LMDB from Debian's liblmdb-dev, for the store benchmark only (never linked into the server).
#include <lmdb.h>
