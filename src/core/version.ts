// package.json is the one source of the version; the build inlines it, so no file is read at start.
import pkg from '../../package.json' with { type: 'json' };

export const version: string = pkg.version;
