// Which series of a study the reading view shows.
import type { SeriesInfo } from "../../api";

/** The series to show: the scheme's sequences in order (T1, STIR), else the first series (CT). */
export function pickSeries(series: SeriesInfo[], sequences: string[]): SeriesInfo[] {
  if (!sequences.length) return series.slice(0, 1);
  const picked = sequences
    .map((seq) => series.find((s) => s.description === seq))
    .filter((s): s is SeriesInfo => !!s);
  return picked.length ? picked : series.slice(0, 1);
}
