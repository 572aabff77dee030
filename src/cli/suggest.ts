/**
 * "Did you mean …?" for an unknown top-level command. Commander suggests only for the
 * commands it has loaded, and start-up loads just the one being run (cli.ts), so the
 * top level asks here, over the command index. Same rule as commander's own suggestions:
 * an edit distance (transpositions count one) of at most 2 and 40% of the word kept.
 */
export function suggestSimilar(word: string, candidates: string[]): string | undefined {
  let best: string[] = [];
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    const length = Math.max(word.length, c.length);
    if ((length - d) / length <= 0.4) continue;
    if (d < bestDistance) {
      bestDistance = d;
      best = [c];
    } else if (d === bestDistance) best.push(c);
  }
  return best.sort()[0];
}

/** Optimal string alignment distance (Damerau–Levenshtein without repeated edits). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}
