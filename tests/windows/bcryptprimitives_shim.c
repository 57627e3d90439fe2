/*
 * TEST-ONLY. NEVER SHIPPED with the library or in any bundle.
 *
 * Wine 8 has no bcryptprimitives.dll, but Rust's std (since 1.78) imports ProcessPrng from it
 * (Windows 10 and later have it). scripts/test-windows builds this file into a DLL named
 * bcryptprimitives.dll, next to the test programs only, so that tableau_publisher.dll loads
 * under Wine. It forwards to BCryptGenRandom with the system-preferred RNG, which Wine has.
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives_shim.c -lbcrypt
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
