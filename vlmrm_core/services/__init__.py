"""What the app and the CLI do with the store: import datasets, label, explore a prompt's
landscape, evaluate rewards against labels, create the demo."""
