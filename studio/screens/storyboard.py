"""The Storyboard screen's page script (the path st.navigation and the tests name): the page itself is the package
studio/screens/storyboard/, which `import studio.screens.storyboard` finds (a package wins over a module of the
same name)."""

from studio.screens.storyboard import render

render()
