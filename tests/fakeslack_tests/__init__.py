"""Tests of fakeslack (a package so its conftest never shadows another `conftest`)."""
