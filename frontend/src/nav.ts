// Navigation without importing the router everywhere (main.ts installs the real one).
let goImpl: (path: string, replace?: boolean) => void = (path) => {
  location.assign(path);
};

export function installNavigate(fn: (path: string, replace?: boolean) => void): void {
  goImpl = fn;
}

export function navigate(path: string, replace = false): void {
  goImpl(path, replace);
}
