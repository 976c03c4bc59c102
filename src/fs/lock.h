/* fo.fs.lock (src/fs/lock.c), registered in the fo.fs module by src/fs/fs.c. */
#ifndef FO_FS_LOCK_H
#define FO_FS_LOCK_H

#include <lua.h>

int fo_fs_lock(lua_State *L);

#endif
