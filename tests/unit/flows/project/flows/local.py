LOCAL_DEFAULT = "next-to-the-flow"
