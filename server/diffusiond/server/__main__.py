from diffusiond.server.launch import main

main()
