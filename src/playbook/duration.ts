import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;

/** Go-style durations as Flux and kubectl write them (`90s`, `5m`, `1m30s`), in milliseconds. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!DURATION_RE.test(s)) return undefined;
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000);
  return Math.round(ms);
}

/** A duration in a playbook: a number of seconds (as Ansible's `delay`) or a string like `5s`. */
export const DurationSchema = z.union([z.number().min(0).describe('seconds'), z.string().regex(DURATION_RE, 'expected a duration such as 10s, 5m or 1m30s')]);

export function durationMs(value: z.infer<typeof DurationSchema>): number {
  return typeof value === 'number' ? Math.round(value * 1000) : (parseDuration(value) ?? 0);
}
