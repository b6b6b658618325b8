"""TensorBoard logging: a SummaryWriter over tensorboardX's event files."""
