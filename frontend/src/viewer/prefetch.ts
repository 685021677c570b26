// The order in which a viewer loads the slices it does not show yet. Pure, unit-tested.

/** Every pane's image ids, interleaved by distance from each pane's shown slice (nearest first, shown ones
 * left out: they are loaded already). */
export function prefetchOrder(stacks: string[][], shown: number[]): string[] {
  const out: string[] = [];
  const longest = Math.max(0, ...stacks.map((ids) => ids.length));
  for (let d = 1; d < longest; d++)
    for (let p = 0; p < stacks.length; p++)
      for (const i of [shown[p] + d, shown[p] - d])
        if (i >= 0 && i < stacks[p].length) out.push(stacks[p][i]);
  return out;
}
