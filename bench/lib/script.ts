/** An integer setting from the environment, within bounds; a bad value stops the run at once. */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

/** A progress printer: `[label  12 s] line`, seconds since it was made. */
export function progress(label: string): (line: string) => void {
  const startedAt = Date.now();
  return (line) => {
    const elapsed = ((Date.now() - startedAt) / 1000).toFixed(0).padStart(4);
    console.log(`[${label} ${elapsed} s] ${line}`);
  };
}
