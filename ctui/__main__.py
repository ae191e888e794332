from ctui.cli import main

main()
