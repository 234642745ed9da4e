import { readFileSync } from 'node:fs';

// Read at run time so the version has one source, package.json, in src/ and in dist/ alike.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
export const version: string = pkg.version;
