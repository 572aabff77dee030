/** opsctl's version: --version, the reference docs, a plan file's opsctlVersion. */
export const VERSION = '0.1.0';
