"""maths layer."""
