"""The labeling app: projects, schemes, studies, assignments, readings, contours, consensus, audit."""
