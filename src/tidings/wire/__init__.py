"""The contract the service and the device share (pure): names both sides must agree on."""
