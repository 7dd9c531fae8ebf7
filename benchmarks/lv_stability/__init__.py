"""EDPCNN's surrogate settings on long ACDC runs: how much the validation Dice swings."""
