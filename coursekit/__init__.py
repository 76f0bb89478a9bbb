"""Support code shared by reference solutions and student templates."""
