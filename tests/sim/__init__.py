"""Tests of the CloudStack simulator (cloudstack_sim)."""
