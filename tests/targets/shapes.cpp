// A C++ target for naming objects by their dynamic class: a small hierarchy with virtual methods,
// objects held in a std::vector and a std::map. It records how many objects of each class it
// made, with write(2) only:  class NAME COUNT  ...  then "done", and waits.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

struct Shape {
	virtual ~Shape() = default;
	virtual double area() const = 0;
	int id = 0;
};

struct Circle : Shape {
	double radius = 1;
	double area() const override { return 3.14159 * radius * radius; }
};

struct Square : Shape {
	double side = 2;
	double area() const override { return side * side; }
};

struct Rounded : Square { // a class derived twice: its own vtable names it
	double corner = 0.5;
	double area() const override { return side * side - corner; }
};

namespace shapes {
struct Label : Shape {
	std::string text;
	double area() const override { return 0; }
};
} // namespace shapes

namespace canvas {
// a global with a C++ name (mangled in the symbol table: _ZN6canvas9highlightE)
Shape *highlight;
} // namespace canvas

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	std::vector<Shape *> drawing;
	std::map<int, Shape *> labels;
	for (int i = 0; i < 300; i++)
		drawing.push_back(new Circle);
	for (int i = 0; i < 200; i++)
		drawing.push_back(new Square);
	for (int i = 0; i < 70; i++)
		drawing.push_back(new Rounded);
	for (int i = 0; i < 40; i++) {
		auto *label = new shapes::Label;
		label->text = "a label long enough to live on the heap, not in the string " + std::to_string(i);
		labels[i] = label;
	}
	canvas::highlight = new Circle;
	std::string temporary = std::string(argv[1]) + ".tmp";
	int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	const char *lines = "class Circle 301\nclass Square 200\nclass Rounded 70\n"
			    "class shapes::Label 40\ndone\n";
	if (write(fd, lines, strlen(lines)) < 0)
		return 3;
	close(fd);
	rename(temporary.c_str(), argv[1]);
	for (;;)
		pause();
}
