// What needs Cornerstone3D, in a chunk of its own (viewer/load.ts imports it): the app's entry stays small,
// and this chunk downloads and parses while the case data is asked for, not before the app starts.
export { ensureCornerstone } from "./cornerstone";
export { Reformat } from "./reformat";
export { Viewer } from "./viewer";
