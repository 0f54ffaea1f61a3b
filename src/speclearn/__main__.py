from speclearn.cli.main import run

run()
