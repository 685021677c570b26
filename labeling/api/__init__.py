"""HTTP only: parse, check permissions, call one service or selector, render."""
