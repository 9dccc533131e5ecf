.PHONY: demo test lint venv

demo:
	./dev demo

test:
	./dev test

lint:
	./dev lint

venv:
	./dev venv
