"""Tests of genomenode.beacon."""
